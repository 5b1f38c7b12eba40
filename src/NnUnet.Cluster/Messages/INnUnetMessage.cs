namespace NnUnet.Cluster.Messages;

/// <summary>
/// Marker for every message and persisted event of the cluster. HOCON binds it to
/// <see cref="Serialization.NnUnetMessageSerializer"/> (MessagePack), so anything that crosses the wire or lands in
/// the journal is an immutable record implementing this interface.
/// </summary>
public interface INnUnetMessage;
