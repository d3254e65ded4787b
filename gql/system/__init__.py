"""System-wide settings (services/system_settings.py)."""
