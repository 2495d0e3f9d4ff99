"""Reports over a stored run: the summary (data) and its renderings (text, json...)."""
