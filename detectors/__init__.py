"""Detector side: normalisation to ECS, Sigma rules, anomaly models and alert building (pure logic)."""
