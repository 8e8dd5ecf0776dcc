#!/bin/sh
# certbot deploy hook: the proxy watches this file and reloads nginx with the new certificate.
# (A file signal instead of `docker kill -s HUP`, so the companion needs no Docker socket.)
date +%s > /etc/letsencrypt/.proxy-reload
