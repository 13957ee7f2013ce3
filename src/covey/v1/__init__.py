"""Generated gRPC/protobuf modules for the covey.v1 wire contract (`make proto` regenerates them)."""
