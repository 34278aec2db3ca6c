namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// A row-major weight matrix held as its file stores it: float32, or bfloat16 (Mixtral's checkpoints are) kept at two
/// bytes a value rather than widened on load. An expert's matrix-vector products stream its whole matrix for each
/// row they compute, so half the bytes is about half the time once the experts no longer fit the cache; the results
/// are those of the widened matrix, bit for bit (<see cref="MoeKernels.MatVec(ReadOnlySpan{ushort}, ReadOnlySpan{float}, Span{float})"/>).
/// </summary>
public sealed class WeightMatrix
{
    private readonly float[]? _float32;
    private readonly ushort[]? _bfloat16;

    private WeightMatrix(int rows, int columns, float[]? float32, ushort[]? bfloat16)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        var length = float32?.Length ?? bfloat16!.Length;
        if (length != (long)rows * columns)
        {
            throw new ArgumentException($"{length:N0} values are not a {rows} × {columns} matrix.");
        }

        (Rows, Columns, _float32, _bfloat16) = (rows, columns, float32, bfloat16);
    }

    public static WeightMatrix Float32(float[] values, int rows, int columns) =>
        new(rows, columns, values ?? throw new ArgumentNullException(nameof(values)), null);

    /// <summary>A matrix of bfloat16 values, given as their bits.</summary>
    public static WeightMatrix BFloat16(ushort[] values, int rows, int columns) =>
        new(rows, columns, null, values ?? throw new ArgumentNullException(nameof(values)));

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>Whether the values are held as bfloat16.</summary>
    public bool IsBFloat16 => _bfloat16 is not null;

    /// <summary>The memory the values take.</summary>
    public long Bytes => _float32 is not null ? 4L * _float32.Length : 2L * _bfloat16!.Length;

    /// <summary>y = W·x.</summary>
    public void MatVec(ReadOnlySpan<float> x, Span<float> y)
    {
        if (_float32 is not null)
        {
            MoeKernels.MatVec(_float32, x, y);
        }
        else
        {
            MoeKernels.MatVec(_bfloat16!, x, y);
        }
    }

    /// <summary>The values as float32 (bfloat16 ones widened, exactly).</summary>
    public float[] ToFloat32() => _float32 is not null ? _float32 : [.. _bfloat16!.Select(MoeKernels.Widen)];
}
