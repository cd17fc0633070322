package dinostream.model.dino;

import dinostream.model.runtime.TrainSession;

/**
 * Stream-friendly hyperparameter schedules: pure functions of the step, with no epochs.
 *
 * <p>DINO's {@code cosine_scheduler} (model/docs/algorithm.md §5) precomputes one value per iteration
 * of a fixed number of epochs. A live stream has no epochs and no known length, so here a schedule is
 * a linear warm-up followed either by a cosine to a horizon (after which it stays at its final
 * value) or by a constant tail. With the horizon set to DINO's total iterations the values are those
 * of {@code cosine_scheduler}, iteration for iteration.
 *
 * <p>"Step" everywhere means the global iteration index {@code it} of DINO, which is the state's
 * {@code step} counter before the step runs (0 for a fresh state).
 */
public final class Schedules {
    private Schedules() {}

    /** DINO's reference batch for the linear lr scaling rule: lr = base_lr · batch / 256. */
    public static final int LR_REFERENCE_BATCH = 256;

    /**
     * One hyperparameter as a function of the step.
     *
     * @param start       value at step 0 (the first warm-up step)
     * @param base        value at the last warm-up step, and where the tail begins
     * @param warmupSteps length of the linear warm-up (0: none)
     * @param end         final value of a cosine tail (ignored by a constant tail)
     * @param horizon     step at which a cosine tail reaches {@code end}; counts the warm-up, like DINO's
     *                    total iterations (ignored by a constant tail)
     * @param cosineTail  cosine from {@code base} to {@code end} after the warm-up; otherwise {@code base} forever
     */
    public record Schedule(double start, double base, long warmupSteps, double end, long horizon, boolean cosineTail) {
        public Schedule {
            if (warmupSteps < 0) throw new IllegalArgumentException("warm-up steps must be >= 0, got " + warmupSteps);
            if (cosineTail && horizon < warmupSteps) {
                throw new IllegalArgumentException("horizon " + horizon + " is shorter than the warm-up of " + warmupSteps + " steps");
            }
            if (!Double.isFinite(start) || !Double.isFinite(base) || !Double.isFinite(end)) {
                throw new IllegalArgumentException("schedule values must be finite");
            }
        }

        /** Warm-up from {@code start} to {@code base}, then cosine to {@code end}, reached at {@code horizon}. */
        public static Schedule cosine(double start, double base, long warmupSteps, double end, long horizon) {
            return new Schedule(start, base, warmupSteps, end, horizon, true);
        }

        /** Warm-up from {@code start} to {@code base}, then {@code base} forever. */
        public static Schedule constantTail(double start, double base, long warmupSteps) {
            return new Schedule(start, base, warmupSteps, base, warmupSteps, false);
        }

        /** A value that never changes. */
        public static Schedule constant(double value) {
            return constantTail(value, value, 0);
        }

        public double at(long step) {
            if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
            if (step < warmupSteps) return warmup(step);
            if (!cosineTail) return base;
            long i = step - warmupSteps, n = horizon - warmupSteps;
            if (i >= n) return end;
            return end + 0.5 * (base - end) * (1 + Math.cos(Math.PI * i / n));
        }

        /**
         * np.linspace(start, base, warmupSteps)[step], computed as numpy does (i · Δ + start, the
         * last point set to {@code base} exactly) so the values agree bit for bit. With a single
         * warm-up step numpy returns {@code [start]}.
         */
        private double warmup(long step) {
            if (warmupSteps == 1) return start;
            if (step == warmupSteps - 1) return base;
            double delta = (base - start) / (warmupSteps - 1);
            return step * delta + start;
        }
    }

    /**
     * DINO's learning rate: warm-up from 0 to {@code baseLr · batch / 256}, then cosine to {@code minLr}
     * at the horizon.
     */
    public static Schedule lr(double baseLr, int batch, double minLr, long warmupSteps, long horizon) {
        return Schedule.cosine(0, scaledLr(baseLr, batch), warmupSteps, minLr, horizon);
    }

    /** The learning rate for an open-ended stream: warm-up from 0 to {@code baseLr · batch / 256}, then constant. */
    public static Schedule lrConstant(double baseLr, int batch, long warmupSteps) {
        return Schedule.constantTail(0, scaledLr(baseLr, batch), warmupSteps);
    }

    /** Linear scaling rule (model/docs/algorithm.md §5). */
    public static double scaledLr(double baseLr, int batch) {
        if (batch <= 0) throw new IllegalArgumentException("batch must be positive, got " + batch);
        return baseLr * batch / LR_REFERENCE_BATCH;
    }

    /** Weight decay: cosine from {@code base} to {@code end} over the horizon, no warm-up (DINO: 0.04 → 0.4). */
    public static Schedule weightDecay(double base, double end, long horizon) {
        return Schedule.cosine(base, base, 0, end, horizon);
    }

    /**
     * Teacher temperature: linear from {@code warm} to {@code temp} over the warm-up, then constant.
     * DINO warms up per epoch; here per step, so the warm-up is given in steps.
     */
    public static Schedule teacherTemp(double warm, double temp, long warmupSteps) {
        return Schedule.constantTail(warm, temp, warmupSteps);
    }

    /** EMA momentum: cosine from {@code base} to 1 over the horizon, no warm-up (DINO: 0.996 → 1). */
    public static Schedule momentum(double base, long horizon) {
        return Schedule.cosine(base, base, 0, 1.0, horizon);
    }

    /**
     * The four schedules of a run, plus last-layer freezing.
     *
     * @param freezeLastLayerSteps the last layer is frozen while {@code step < freezeLastLayerSteps}
     */
    public record TrainingSchedule(Schedule lr, Schedule weightDecay, Schedule teacherTemp, Schedule momentum,
                                   long freezeLastLayerSteps) {
        /** DINO's defaults (model/docs/algorithm.md §5, §7). */
        public static final double BASE_LR = 5e-4, MIN_LR = 1e-6, WEIGHT_DECAY = 0.04, WEIGHT_DECAY_END = 0.4,
                TEACHER_TEMP = 0.04, MOMENTUM = 0.996;

        public TrainingSchedule {
            if (freezeLastLayerSteps < 0) throw new IllegalArgumentException("freeze_last_layer steps must be >= 0");
        }

        /**
         * DINO's recipe with its 100 epochs mapped onto {@code horizon} steps: warm-up over the first
         * tenth (10 of 100 epochs), last layer frozen for the first hundredth (1 epoch), cosine tails
         * to the horizon, teacher temperature 0.04 throughout (the code default).
         */
        public static TrainingSchedule dino(int batch, long horizon) {
            if (horizon <= 0) throw new IllegalArgumentException("horizon must be positive, got " + horizon);
            long warmup = horizon / 10;
            return new TrainingSchedule(
                    Schedules.lr(BASE_LR, batch, MIN_LR, warmup, horizon),
                    Schedules.weightDecay(WEIGHT_DECAY, WEIGHT_DECAY_END, horizon),
                    Schedule.constant(TEACHER_TEMP),
                    Schedules.momentum(MOMENTUM, horizon),
                    horizon / 100);
        }

        /**
         * For a stream with no end in sight: lr warm-up to DINO's scaled peak and then constant,
         * weight decay, teacher temperature and momentum at DINO's starting values, last layer
         * frozen for a tenth of the warm-up (DINO freezes 1 epoch of its 10 warm-up epochs).
         */
        public static TrainingSchedule continuous(int batch, long warmupSteps) {
            return new TrainingSchedule(
                    lrConstant(BASE_LR, batch, warmupSteps),
                    Schedule.constant(WEIGHT_DECAY),
                    Schedule.constant(TEACHER_TEMP),
                    Schedule.constant(MOMENTUM),
                    warmupSteps / 10);
        }

        public TrainingSchedule withTeacherTemp(Schedule s) {
            return new TrainingSchedule(lr, weightDecay, s, momentum, freezeLastLayerSteps);
        }

        public TrainingSchedule withFreezeLastLayerSteps(long steps) {
            return new TrainingSchedule(lr, weightDecay, teacherTemp, momentum, steps);
        }

        /** Whether the last layer is frozen at {@code step}. */
        public boolean frozen(long step) {
            return step < freezeLastLayerSteps;
        }

        /** The hyperparameters of {@code step}, freezing per {@link #freezeLastLayerSteps}. */
        public TrainSession.Hyper at(long step) {
            return at(step, frozen(step));
        }

        /** The hyperparameters of {@code step} with the freeze flag given explicitly. */
        public TrainSession.Hyper at(long step, boolean freezeLastLayer) {
            return new TrainSession.Hyper((float) lr.at(step), (float) weightDecay.at(step), (float) teacherTemp.at(step),
                    (float) momentum.at(step), freezeLastLayer);
        }
    }
}
