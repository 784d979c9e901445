"""Importers: Rundeck, Chaos Toolkit, AWS SSM Automation, Ansible and Azure Site Recovery documents → draft
runbook versions with an import report and the original kept as provenance. One module per format
(`rundeck.py` …), the formats and detection (`registry.py`), the report (`base.py`) and the use case
(`service.py`: `import_file`)."""
