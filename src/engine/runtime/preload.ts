// Imported first by every entry point that runs onnxruntime (the CLI, the trainer and the inference
// worker): puts the CUDA provider beside onnxruntime before anything loads onnxruntime-node.
import { preloadOrt } from './ortload';

preloadOrt();
