"""Own click and open tracking (docs/tracking.md): links rewritten at render time to signed
tokens naming the delivery and the link's index (`rewrite`, `tokens`), two public views that
answer at once and record a raw hit afterwards (`views`), and a task that labels hits human,
scanner or machine_open in bulk and turns them into Responses and crm events (`classify`,
with the rules in `labels`)."""
