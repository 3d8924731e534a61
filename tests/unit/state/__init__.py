"""Tests of the on-host state model."""
