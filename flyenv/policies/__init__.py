"""Scripted and loadable policies that map observations to actions."""
