"""Frequenz Microgrid: watch and steer a microgrid from Home Assistant."""
