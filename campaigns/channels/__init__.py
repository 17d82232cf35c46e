"""Delivery channels: the ChannelBackend base and ProviderError (base.py), email and SMS
backends (email.py, sms.py) and what providers report (provider_events.py). Only this
package imports anymail and twilio, and only it reads a provider's error codes."""
