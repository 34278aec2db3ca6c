namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// A session's keys and values, per layer, for positions 0 .. <see cref="Length"/> − 1 (rotary positions already
/// applied to the keys). Positions are added in order; <see cref="Truncate"/> drops the tail, as a restore from a
/// checkpoint behind the live state does.
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _keys;
    private readonly float[][] _values;
    private readonly int _width;

    public KvCache(MoeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config.Validated();
        _width = config.ModelDim;
        _keys = [.. Enumerable.Range(0, config.Layers).Select(_ => new float[config.MaxSequence * _width])];
        _values = [.. Enumerable.Range(0, config.Layers).Select(_ => new float[config.MaxSequence * _width])];
    }

    public MoeConfig Config { get; }

    /// <summary>Positions held (the same in every layer once a position's last layer is written).</summary>
    public int Length { get; private set; }

    /// <summary>Writes position <paramref name="position"/> of <paramref name="layer"/>; layer 0 opens a new position.</summary>
    public void Write(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        if (position >= Config.MaxSequence)
        {
            throw new InvalidOperationException($"The sequence is full: {Config.MaxSequence} positions.");
        }

        if (layer == 0 && position != Length || layer > 0 && position != Length - 1)
        {
            throw new InvalidOperationException($"Position {position} of layer {layer} is out of order: the cache holds {Length}.");
        }

        if (layer == 0)
        {
            Length++;
        }

        key.CopyTo(_keys[layer].AsSpan(position * _width, _width));
        value.CopyTo(_values[layer].AsSpan(position * _width, _width));
    }

    public ReadOnlySpan<float> Keys(int layer, int length) => _keys[layer].AsSpan(0, length * _width);

    public ReadOnlySpan<float> Values(int layer, int length) => _values[layer].AsSpan(0, length * _width);

    /// <summary>Forgets positions from <paramref name="length"/> on.</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Length = length;
    }
}
