// Learning-rate schedules, computed in JavaScript per optimizer step and fed to the K-step program
// as its `lr` input (so a schedule costs nothing in the graph). Steps are 0-based over the run.
//   warm-up (s < W):  lr·(s+1)/W                          (PyTorch LinearLR from 1/W to 1)
//   step:             lr·gamma^floor((s−W)/stepSize)      (StepLR, in optimizer steps)
//   cosine:           min + (lr − min)·(1 + cos(π·(s−W)/(S−W)))/2   (CosineAnnealingLR, T_max = S−W)

import type { ScheduleConfig } from '../config/types';

export function learningRateAt(s: number, total: number, lr: number, sch: ScheduleConfig): number {
  const W = sch.warmupSteps;
  if (s < W) return (lr * (s + 1)) / W;
  const t = s - W;
  switch (sch.type) {
    case 'constant':
      return lr;
    case 'step':
      return lr * Math.pow(sch.gamma, Math.floor(t / sch.stepSize));
    case 'cosine': {
      const T = Math.max(1, total - W);
      return sch.minLearningRate + ((lr - sch.minLearningRate) * (1 + Math.cos((Math.PI * Math.min(t, T)) / T))) / 2;
    }
  }
}
