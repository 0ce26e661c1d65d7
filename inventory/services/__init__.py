"""Domain services: Flask-free functions that own their transactions (see STYLE.md)."""
