"""What every PixelFlow service shares: settings, logging, errors and the gRPC server bootstrap."""
