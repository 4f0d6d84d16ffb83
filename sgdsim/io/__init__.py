"""Run files and recordings: writing (`runfile`), reading (`runread`), trajectories recorded elsewhere
(`record`) and the recovery of killed runs (`recover`).
"""
