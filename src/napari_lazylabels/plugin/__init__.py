"""The napari plugin: layer conventions, reader, writer and sample data (no Qt), and the dock widgets."""
