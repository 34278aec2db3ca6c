using System.Runtime.InteropServices;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// The rows an expert replica computed last, by content. A session that resumes after its silo died recomputes the
/// positions past its checkpoint, and the rows it sends its experts are, bit for bit, those its predecessor sent them
/// moments before (decoding is deterministic); their answers are taken from here instead of being computed again, which
/// leaves the resumed session's first step mostly its attention. The expert is deterministic, so a remembered answer is
/// the one it would compute. A ring of the last rows; a row matches only if all its bits are equal.
/// </summary>
internal sealed class ExpertRowMemo
{
    /// <summary>What the memo may hold, inputs and answers together.</summary>
    private const int BudgetBytes = 256 * 1024;

    private const int MaxRows = 64;

    private readonly int _width;
    private readonly float[] _inputs;
    private readonly float[] _outputs;
    private readonly ulong[] _fingerprints;
    private int _count;
    private int _next;

    public ExpertRowMemo(int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        _width = width;
        Capacity = Math.Clamp(BudgetBytes / (2 * sizeof(float) * width), 1, MaxRows);
        _inputs = new float[Capacity * width];
        _outputs = new float[Capacity * width];
        _fingerprints = new ulong[Capacity];
    }

    /// <summary>How many rows it remembers (the newest).</summary>
    public int Capacity { get; }

    public long Hits { get; private set; }

    /// <summary>
    /// Copies the remembered answer to <paramref name="row"/> into <paramref name="output"/>; false if there is none, and
    /// then <paramref name="fingerprint"/> is what <see cref="Add"/> takes with the answer computed.
    /// </summary>
    public bool TryGet(ReadOnlySpan<float> row, Span<float> output, out ulong fingerprint)
    {
        CheckWidth(row, output);
        fingerprint = Fingerprint(row);
        for (var i = 0; i < _count; i++)
        {
            if (_fingerprints[i] == fingerprint
                && MemoryMarshal.AsBytes(_inputs.AsSpan(i * _width, _width)).SequenceEqual(MemoryMarshal.AsBytes(row)))
            {
                _outputs.AsSpan(i * _width, _width).CopyTo(output);
                Hits++;
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Remembers <paramref name="output"/> as the answer to <paramref name="row"/> (whose fingerprint a missed
    /// <see cref="TryGet"/> gave), in place of the oldest row.
    /// </summary>
    public void Add(ReadOnlySpan<float> row, ReadOnlySpan<float> output, ulong fingerprint)
    {
        CheckWidth(row, output);
        row.CopyTo(_inputs.AsSpan(_next * _width, _width));
        output.CopyTo(_outputs.AsSpan(_next * _width, _width));
        _fingerprints[_next] = fingerprint;
        _next = (_next + 1) % Capacity;
        _count = Math.Min(_count + 1, Capacity);
    }

    /// <summary>A few of the row's bits mixed (a cheap filter before the comparison of all of them, not a hash of the row).</summary>
    internal static ulong Fingerprint(ReadOnlySpan<float> row)
    {
        var bits = MemoryMarshal.Cast<float, uint>(row);
        var step = Math.Max(1, bits.Length / 8);
        var fingerprint = (ulong)bits.Length;
        for (var i = 0; i < bits.Length; i += step)
        {
            fingerprint = (fingerprint ^ bits[i]) * 0x100000001B3UL;
        }

        return fingerprint ^ bits[^1];
    }

    private void CheckWidth(ReadOnlySpan<float> row, ReadOnlySpan<float> output)
    {
        if (row.Length != _width || output.Length != _width)
        {
            throw new ArgumentException($"A memo of rows of {_width} values was given a row of {row.Length} and an answer of {output.Length}.");
        }
    }
}
