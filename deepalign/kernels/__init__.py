"""deepalign.kernels"""
