package dev.tandem.runtime.cpu;

/** PLACEHOLDER (replaced by the quant branch). */
public final class Activations {
    float[] x; int rows; int columns;
    public Activations(int maxRows, int maxColumns) {}
    public void load(float[] x, int rows, int columns) { this.x = x; this.rows = rows; this.columns = columns; }
    public int rows() { return rows; }
    public int columns() { return columns; }
}
