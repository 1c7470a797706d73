"""deepalign.studies"""
