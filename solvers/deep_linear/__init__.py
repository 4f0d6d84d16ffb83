"""Gradient flows and minibatch steps of deep linear networks (`flows`).
"""
