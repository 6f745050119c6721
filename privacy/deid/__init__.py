"""De-identification: PII detection, transforms (HMAC pseudonyms, generalization), risk."""
