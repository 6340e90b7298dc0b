package dev.tandem.runtime.cuda;

/** A kernel launch's grid and block sizes and its dynamic shared memory, as {@code cuLaunchKernel} takes them. */
public record LaunchDims(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes) {

    public LaunchDims {
        if (gridX < 1 || gridY < 1 || gridZ < 1 || blockX < 1 || blockY < 1 || blockZ < 1 || sharedBytes < 0) {
            throw new IllegalArgumentException("bad launch dimensions: grid " + gridX + "x" + gridY + "x" + gridZ
                    + ", block " + blockX + "x" + blockY + "x" + blockZ + ", shared " + sharedBytes);
        }
    }

    public static LaunchDims of(int gridX, int gridY, int gridZ, int threads, int sharedBytes) {
        return new LaunchDims(gridX, gridY, gridZ, threads, 1, 1, sharedBytes);
    }

    public static LaunchDims linear(int blocks, int threads) {
        return new LaunchDims(blocks, 1, 1, threads, 1, 1, 0);
    }
}
