"""Outgoing mail: jinja2 templates (mails and the pages their links open) and the SMTP sender.

Named `mail` rather than `email` so that nothing here is mistaken for the standard library's
`email` package, which the sender uses to build messages.
"""
