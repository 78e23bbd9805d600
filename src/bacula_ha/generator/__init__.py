"""The site-description to crm shell / pcs configuration generator."""
