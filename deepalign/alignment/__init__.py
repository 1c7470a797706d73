"""deepalign.alignment"""
