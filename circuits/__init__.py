"""The ezkl pipeline, file to file: settings -> calibrate -> compile -> SRS -> setup -> witness -> prove -> verify."""
