"""The rules every store backend applies the same way, written once: who may change a group and
how, who a message goes to, who may see whose presence, what the inbox log holds and how it is
numbered, and the events of a message, a receipt and a group change. The backends (``sql``,
``mongo``) only read and write; each module here has the name of the backend modules that use it.
"""
