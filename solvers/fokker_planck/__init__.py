"""Finite-volume Fokker–Planck solver on rectangular grids (`finite_volume`).
"""
