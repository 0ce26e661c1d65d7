"""The REST API (/api/v1): the same services as the web forms, for automation."""
