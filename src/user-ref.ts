/**
 * A signed-in user as the rest of the code sees them: who acts (a token's subject, a viewer, a
 * saver), and the name their events carry. Auth produces it; services take it.
 */
export interface UserRef {
  id: string;
  username: string;
}
