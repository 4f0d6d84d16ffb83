"""Small networks trained by SGD: the compiled ensemble kernel (`kernel`) and its NumPy twin (`reference`).
"""
