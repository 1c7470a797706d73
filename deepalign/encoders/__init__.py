"""deepalign.encoders"""
