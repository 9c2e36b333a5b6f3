"""Kibana saved objects for socpipe alerts, and their installation through the import API."""

from pipeline.elastic.kibana.install import InstallResult, KibanaError, install, load_objects
from pipeline.elastic.kibana.objects import FILES, render

__all__ = ["FILES", "InstallResult", "KibanaError", "install", "load_objects", "render"]
