"""deepalign.reports"""
