namespace Orleans.LIFL;

public enum DeactivationReasonCode
{
    None,

    /// <summary>The activation was idle for longer than its collection age.</summary>
    ActivationIdle,

    /// <summary>The grain called DeactivateOnIdle.</summary>
    ApplicationRequested,

    /// <summary>The silo is shutting down gracefully.</summary>
    ShuttingDown,

    /// <summary>Another activation of the same grain won the directory registration.</summary>
    DuplicateActivation,

    /// <summary>OnActivateAsync (or reading the grain's state) failed.</summary>
    ActivationFailed,
}

/// <summary>Why an activation is being deactivated.</summary>
public readonly record struct DeactivationReason(DeactivationReasonCode ReasonCode, string Description)
{
    public override string ToString() => $"{ReasonCode}: {Description}";
}
