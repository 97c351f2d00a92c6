"""Message templates: a sandboxed, strict Jinja2 environment and SMS sizing."""

from reminders.templating.render import RenderedMessage, TemplateRenderer
from reminders.templating.segments import SmsSize, sms_size

__all__ = ["RenderedMessage", "SmsSize", "TemplateRenderer", "sms_size"]
