"""Writing the deliverables: the GeoPackage container, the metadata document, checksums."""
