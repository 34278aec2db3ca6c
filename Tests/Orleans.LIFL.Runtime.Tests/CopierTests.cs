using System.Collections.Immutable;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Deep copies made by generated and built-in copiers.</summary>
public sealed class CopierTests
{
    /// <summary>A generated copier copies every [Id] member, deeply, and shares nothing mutable.</summary>
    [Fact]
    public void Generated_copier_copies_deeply()
    {
        var original = new Payload
        {
            Name = "root",
            Values = [1, 2, 3],
            Table = { ["a"] = [1, 2] },
            Child = new Payload { Name = "child", Values = [4] },
        };

        var copy = DeepCopier<Payload>.Copy(original);
        Assert.NotSame(original, copy);
        Assert.NotSame(original.Values, copy.Values);
        Assert.NotSame(original.Table, copy.Table);
        Assert.NotSame(original.Table["a"], copy.Table["a"]);
        Assert.NotSame(original.Child, copy.Child);
        Assert.Equal("root", copy.Name);
        Assert.Equal([1, 2, 3], copy.Values);
        Assert.Equal([1, 2], copy.Table["a"]);
        Assert.Equal("child", copy.Child!.Name);
        Assert.Equal([4], copy.Child.Values);
    }

    /// <summary>A value typed as object (or an interface) is copied by its runtime type.</summary>
    [Fact]
    public void Polymorphic_values_are_copied_by_runtime_type()
    {
        object boxed = new Payload { Name = "boxed", Values = [9] };
        var copy = Assert.IsType<Payload>(DeepCopier<object>.Copy(boxed));
        Assert.NotSame(boxed, copy);
        Assert.Equal([9], copy.Values);

        IReadOnlyList<int> list = new List<int> { 1, 2 };
        Assert.NotSame(list, DeepCopier<IReadOnlyList<int>>.Copy(list));
    }

    /// <summary>Collections keep their comparers and contents.</summary>
    [Fact]
    public void Collections_keep_comparers()
    {
        var dictionary = new Dictionary<string, List<int>>(StringComparer.OrdinalIgnoreCase) { ["Key"] = [1] };
        var copy = DeepCopier<Dictionary<string, List<int>>>.Copy(dictionary);
        Assert.Same(StringComparer.OrdinalIgnoreCase, copy.Comparer);
        Assert.Equal([1], copy["KEY"]);
        Assert.NotSame(dictionary["Key"], copy["key"]);

        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "a" };
        Assert.Contains("A", DeepCopier<HashSet<string>>.Copy(set));
    }

    /// <summary>Immutable values are shared, not copied.</summary>
    [Fact]
    public void Immutable_values_are_shared()
    {
        var text = new string('x', 3);
        Assert.Same(text, DeepCopier<string>.Copy(text));
        var array = ImmutableArray.Create(1, 2);
        Assert.Equal(array, DeepCopier<ImmutableArray<int>>.Copy(array));
        var payload = new Payload();
        Assert.Same(payload, DeepCopier<Immutable<Payload>>.Copy(payload.AsImmutable()).Value);
        Assert.True(DeepCopier<int>.IsShallow);
        Assert.False(DeepCopier<Payload>.IsShallow);
    }

    /// <summary>A cyclic graph fails with a clear error instead of overflowing the stack.</summary>
    [Fact]
    public void Cyclic_graph_is_refused()
    {
        var cyclic = new Payload { Name = "loop" };
        cyclic.Child = cyclic;
        var error = Assert.Throws<InvalidOperationException>(() => DeepCopier<Payload>.Copy(cyclic));
        Assert.Contains("levels deep", error.Message, StringComparison.Ordinal);

        // The thread's copy depth is restored: ordinary copies still work afterwards.
        Assert.Equal("ok", DeepCopier<Payload>.Copy(new Payload { Name = "ok" }).Name);
    }

    /// <summary>A type the runtime cannot copy fails with an error that says how to fix it.</summary>
    [Fact]
    public void Unknown_type_is_reported_with_a_fix()
    {
        var error = Assert.Throws<CodecNotFoundException>(() => DeepCopier<NotSerializable>.Copy(new NotSerializable()));
        Assert.Contains(nameof(NotSerializable), error.Message, StringComparison.Ordinal);
        Assert.Contains("[GenerateSerializer]", error.Message, StringComparison.Ordinal);
    }

    private sealed class NotSerializable
    {
        public int Value { get; set; }
    }
}
