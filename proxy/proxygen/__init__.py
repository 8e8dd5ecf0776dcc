"""Config generator for the usbills master proxy and its ACME companion.

Pure logic (parsing container env into vhosts, validation, rendering, certificate planning)
lives in small modules without Docker imports so it can be unit-tested on the host; the
`proxy` and `companion` modules are the long-running processes inside the two images.
"""
