"""Reference data for filter drop-downs and forms: departments, categories, custom field
definitions, countries, currencies, languages."""
