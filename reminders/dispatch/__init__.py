"""Dispatch: claim due messages, render, send, record the outcome; and the wake-up service."""
