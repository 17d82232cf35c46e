"""Public pages (unsubscribe, preference centre) and provider webhooks (Twilio)."""
