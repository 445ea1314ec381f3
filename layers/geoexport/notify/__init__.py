"""Telling people: callback bodies and webhook delivery."""
