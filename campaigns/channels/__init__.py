"""Delivery channels. Only this package imports anymail and twilio."""
