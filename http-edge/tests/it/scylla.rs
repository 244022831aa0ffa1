//! The server with its users in a real CQL database: this test process's
//! Apache Cassandra node (`portcullis_storage::scylla::fixture`), or the
//! ScyllaDB node `PORTCULLIS_TEST_SCYLLA` names. The flows themselves run on
//! it through `on_every_store!` in the other files; here is what only this
//! store has.

use portcullis_storage::UserStore;
use portcullis_storage::scylla::ScyllaUserStore;

use crate::support::*;

#[test]
fn a_registration_is_in_the_keyspace_for_every_pod_to_find() {
    let ks = Stores::Scylla.keyspace("state").unwrap();
    let srv = TestServer::with(|e, _| Stores::Scylla.apply("state", e, Some(&ks)));
    let reg = srv.register("State@Example.com", "password-1");
    let id = s(&reg["user"]["id"]).to_owned();
    // Another connection to the keyspace (another pod) finds the user by
    // the normalized address, with the profile the server answered.
    let (found, user) = block_on(async {
        let store = ScyllaUserStore::connect(ks.config.clone()).await.unwrap();
        let found = store
            .find_user_id_by_email("state@example.com")
            .await
            .unwrap()
            .expect("the registered user is in the keyspace");
        let user = store.get_user(found).await.unwrap().unwrap();
        (found, user)
    });
    let hex: String = found.0.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, id.replace('-', ""));
    assert_eq!(user.email, "state@example.com");
    assert_eq!(srv.login("state@example.com", "password-1").status, 200);
    drop(srv);
}
