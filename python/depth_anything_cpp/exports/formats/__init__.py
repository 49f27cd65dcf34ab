"""One module per ``export_format``, each defining ``FORMAT`` (an
:class:`~depth_anything_cpp.exports.format.ExportFormat`); adding a module adds a format."""
