"""Lightning layer: LightningModule, DataModule and callbacks for alignment training."""
