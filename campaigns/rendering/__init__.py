"""Personalisation: message templates rendered in a restricted Django template engine.

Templates are written by marketers and fed data that customers control (names, custom
attributes, event properties), so the engine is locked down:

- a dedicated ``Engine`` with no template loaders, no loadable libraries and a builtin library
  of whitelisted tags and filters only: ``{% load %}``, ``{% include %}``, ``{% extends %}``,
  ``{% debug %}``, ``{% url %}``, ``{% csrf_token %}``, ``{% autoescape %}`` and the ``safe``
  filter do not exist here, and a template using them is rejected with the tag named;
- the context is built from plain dicts of whitelisted fields, never model instances, so
  nothing reaches settings, managers or secrets (``{{ settings.SECRET_KEY }}`` is empty);
- HTML bodies are autoescaped; subject, preheader, text and SMS are not HTML and are rendered
  without escaping (but from the same whitelisted context);
- rendering is bounded (docs/campaigns.md, "Limits"): padding and format widths are numbers
  written in the template and at most RENDER_MAX_FILTER_WIDTH, loops nest at most
  RENDER_MAX_LOOP_DEPTH deep (both refused when the template is saved), loops run at most
  RENDER_MAX_LOOP_ITERATIONS times in all, no filter makes a value and no loop produces text
  past RENDER_MAX_EMAIL_BYTES characters, and a finished message over RENDER_MAX_EMAIL_BYTES
  (email) or RENDER_MAX_SMS_CHARS (SMS) is a RenderError, so it is never sent;
- no silent blanks (docs/campaigns.md, "Variables"): a name or a contact/campaign field the
  context does not have is refused at save with the closest known name, and a variable in a
  link that renders empty without |default is a RenderError, so the message is held;
- an error message never carries a customer's signed link: previews and validation use
  placeholder links, and errors are stripped of the context and of anything token-shaped.
"""

from campaigns.rendering.context import (
    PREVIEW_PREFERENCES_URL,
    PREVIEW_UNSUBSCRIBE_URL,
    recent_context_for,
)
from campaigns.rendering.render import RenderedMessage, RenderError, render_message
from campaigns.rendering.text import html_to_text
from campaigns.rendering.validation import template_errors, template_validate

__all__ = [
    "PREVIEW_PREFERENCES_URL",
    "PREVIEW_UNSUBSCRIBE_URL",
    "RenderError",
    "RenderedMessage",
    "html_to_text",
    "recent_context_for",
    "render_message",
    "template_errors",
    "template_validate",
]
