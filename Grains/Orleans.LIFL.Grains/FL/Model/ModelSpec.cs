using System.Collections.Immutable;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>One named float32 tensor of a model, row-major ("fc1.weight" of shape [128, 784]).</summary>
[GenerateSerializer]
[Immutable]
public sealed record TensorSpec([property: Id(0)] string Name, [property: Id(1)] int[] Shape)
{
    /// <summary>The number of float32 values (the product of the dimensions).</summary>
    public int Elements => Shape.Aggregate(1, (product, dimension) => checked(product * dimension));

    public override string ToString() => $"{Name}[{string.Join(", ", Shape)}]";

    public bool Equals(TensorSpec? other) =>
        other is not null && Name == other.Name && Shape.AsSpan().SequenceEqual(other.Shape);

    public override int GetHashCode() => HashCode.Combine(Name, Shape.Length, Shape.Length > 0 ? Shape[0] : 0);
}

/// <summary>
/// A model as the FL platform sees it: named float32 tensors, laid out one after the other in a single flat vector
/// of <see cref="Parameters"/> values (the order of <see cref="Tensors"/>). Updates, global models and aggregates are
/// all such vectors.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record ModelSpec([property: Id(0)] ImmutableArray<TensorSpec> Tensors)
{
    public int Parameters => Tensors.Sum(t => t.Elements);

    /// <summary>The bytes of one flat vector.</summary>
    public long Bytes => (long)Parameters * sizeof(float);

    /// <summary>Where tensor <paramref name="name"/> starts in the flat vector, and how many values it has.</summary>
    public (int Offset, int Length) Locate(string name)
    {
        var offset = 0;
        foreach (var tensor in Tensors)
        {
            if (tensor.Name == name)
            {
                return (offset, tensor.Elements);
            }

            offset += tensor.Elements;
        }

        throw new ArgumentException($"The model has no tensor named '{name}' (it has {string.Join(", ", Tensors.Select(t => t.Name))}).", nameof(name));
    }

    /// <summary>The values of tensor <paramref name="name"/> within a flat vector of this model.</summary>
    public Span<float> Slice(Span<float> vector, string name)
    {
        var (offset, length) = Locate(name);
        return vector.Slice(offset, length);
    }

    /// <summary>Null when the spec is usable; otherwise what is wrong with it.</summary>
    public string? Problem()
    {
        if (Tensors.IsDefaultOrEmpty)
        {
            return "a model needs at least one tensor";
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var tensor in Tensors)
        {
            if (string.IsNullOrWhiteSpace(tensor.Name))
            {
                return "a tensor has no name";
            }

            if (!names.Add(tensor.Name))
            {
                return $"two tensors are named '{tensor.Name}'";
            }

            if (tensor.Shape is null || tensor.Shape.Length == 0 || tensor.Shape.Any(d => d <= 0))
            {
                return $"tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape ?? [])}]: every dimension must be positive";
            }

            total += tensor.Shape.Aggregate(1L, (product, dimension) => product * dimension);
            if (total > int.MaxValue / sizeof(float))
            {
                return $"the model has more than {int.MaxValue / sizeof(float):N0} parameters";
            }
        }

        return null;
    }

    public bool Equals(ModelSpec? other) => other is not null && Tensors.AsSpan().SequenceEqual(other.Tensors.AsSpan());

    public override int GetHashCode() => HashCode.Combine(Tensors.Length, Parameters);

    public override string ToString() => $"{Tensors.Length} tensors, {Parameters:N0} parameters";
}
