"""deepalign.agents"""
